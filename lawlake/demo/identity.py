"""Who the simulated people are: resident identity numbers and Chinese names.

Identity numbers follow GB 11643-1999 (region code, birth date, sequence whose
parity is the sex, check character); the 15-digit 1989-standard form and
mistyped numbers are produced here too, as defects to inject. Names are drawn
from common surnames and given-name characters, with the spelling variants
that the same person gets in different agencies' systems.
"""

from __future__ import annotations

import random
from datetime import date
from itertools import accumulate

__all__ = [
    "check_character",
    "id_number",
    "legacy_15",
    "mistype",
    "draw_name",
    "name_variant",
    "GBK_SAFE_DOTS",
    "UNICODE_DOTS",
]

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARACTERS = "10X98765432"  # indexed by (weighted sum mod 11)


def check_character(first17: str) -> str:
    """The GB 11643-1999 check character of the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS))
    return CHECK_CHARACTERS[total % 11]


def id_number(region: str, birth: date, sequence: int) -> str:
    """An 18-digit identity number; ``sequence`` (1..999) is odd for men, even for women."""
    first17 = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return first17 + check_character(first17)


def legacy_15(id18: str) -> str:
    """The 1989-standard 15-digit form of an 18-digit number: two-digit year, no check character."""
    return id18[:6] + id18[8:17]


def mistype(id18: str, rng: random.Random) -> str:
    """One of the first 17 digits replaced by another digit.

    Every weight is non-zero modulo the prime 11, so any single-digit change
    breaks the check character: the result is always detectably wrong.
    """
    pos = rng.randrange(17)
    digit = rng.choice([d for d in "0123456789" if d != id18[pos]])
    return id18[:pos] + digit + id18[pos + 1 :]


# ~100 common surnames, most frequent first; weights fall with rank like real frequencies.
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_SURNAME_CUM = tuple(accumulate(1.0 / (rank + 8) for rank in range(len(SURNAMES))))
MALE_GIVEN = (
    "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林欢阳建国峰亮成东晨博文志海洋立新春永德忠兵庆"
    "贵荣振光天宏家子义育福祥瑞康毅豪锋江河山松柏威武彬杨坤晓达鸿睿泽航铭轩诚哲然远良兴顺胜安昌金培根发祖耀"
)
FEMALE_GIVEN = (
    "芳娜敏静丽艳娟霞燕玲婷雪慧莹倩琳颖洁红梅萍兰琴云莉丹蓉欣悦佳怡晶凤秀英桂珍玉翠美月彩春菊琼露瑶璐洋"
    "妍淑惠巧雅思梦瑾岚薇菲茜媛嘉清馨宁萱诗语若晴雯小爱霏蕾蓓青芬素娥香莲婉琪瑜琦璇珊楠柳苗琬玥彤蕊雨虹霖"
)
# Uyghur-style transliterated names, written with the middle dot (·) between parts.
MINORITY_FIRST = ("买买提", "艾力", "阿不都", "热合曼", "努尔", "吐尔逊", "阿迪力", "伊力", "库尔班", "艾合买提")
MINORITY_FIRST_FEMALE = ("古丽", "阿依古丽", "热娜", "帕提古丽", "米热古丽", "阿娜尔")
MINORITY_LAST = ("艾买提", "吐尔洪", "阿不力孜", "肉孜", "依明", "沙吾提", "托合提", "买合木提", "阿布拉", "卡德尔")

# Simplified → traditional forms that turn up when a clerk's input method differs
# (王 and most other characters have no distinct traditional form).
TRADITIONAL = {
    "张": "張", "陈": "陳", "刘": "劉", "杨": "楊", "黄": "黃", "赵": "趙", "吴": "吳", "孙": "孫",
    "马": "馬", "郑": "鄭", "谢": "謝", "韩": "韓", "冯": "馮", "邓": "鄧", "许": "許", "苏": "蘇",
    "叶": "葉", "钱": "錢", "罗": "羅", "卢": "盧", "陆": "陸", "汤": "湯", "龙": "龍", "伟": "偉",
    "军": "軍", "红": "紅", "国": "國", "东": "東", "丽": "麗", "强": "強", "飞": "飛", "兰": "蘭",
    "华": "華", "辉": "輝", "杰": "傑", "鹏": "鵬", "涛": "濤", "刚": "剛", "宁": "寧", "庆": "慶",
    "贵": "貴", "荣": "榮", "云": "雲", "艳": "艷", "凤": "鳳", "静": "靜", "颖": "穎", "洁": "潔",
    "莹": "瑩", "凯": "凱", "帅": "帥", "欢": "歡", "阳": "陽", "义": "義", "龚": "龔",
    "邹": "鄒", "顾": "顧", "贺": "賀", "万": "萬", "严": "嚴", "韦": "韋", "钟": "鐘",
}
# Replacements for the middle dot. The procuratorate exports GBK, which lacks • and ・.
GBK_SAFE_DOTS = (".", "．", "", " ")
UNICODE_DOTS = GBK_SAFE_DOTS + ("•", "・")


def draw_name(rng: random.Random, sex: str, minority: bool) -> str:
    """A 2–3 character Han name, or a two-part transliterated name joined by ·."""
    if minority:
        first = rng.choice(MINORITY_FIRST if sex == "男" else MINORITY_FIRST_FEMALE)
        return f"{first}·{rng.choice(MINORITY_LAST)}"
    surname = rng.choices(SURNAMES, cum_weights=_SURNAME_CUM)[0]
    pool = MALE_GIVEN if sex == "男" else FEMALE_GIVEN
    given_length = 2 if rng.random() < 0.7 else 1
    return surname + "".join(rng.choice(pool) for _ in range(given_length))


def name_variant(name: str, rng: random.Random, dots: tuple[str, ...]) -> str:
    """The same name as another clerk typed it: a stray or full-width space, a traditional character, a different dot."""
    if "·" in name:
        return name.replace("·", rng.choice(dots))
    forms = [f"{name[0]} {name[1:]}", f"{name[0]}\u3000{name[1:]}", f"{name} "]
    convertible = [i for i, ch in enumerate(name) if ch in TRADITIONAL]
    if convertible:
        i = rng.choice(convertible)
        traditional = name[:i] + TRADITIONAL[name[i]] + name[i + 1 :]
        forms += [traditional, traditional]  # the commonest variant in practice
    return rng.choice(forms)
