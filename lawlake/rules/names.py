"""Person names, normalized so that one person's name compares equal across agencies.

- All whitespace goes, including the ideographic space U+3000 (张　三 → 张三):
  Chinese names have no inner spaces, and input methods insert them freely.
- Every middle-dot look-alike becomes U+00B7 "·", the separator of transcribed
  names (买买提·艾力) in GB/T 28039-2011 and on identity cards.
- Traditional characters common in names (surnames above all) map to their
  simplified forms (General Standard Chinese Characters table, 2013), because
  Hong Kong, Macao and Taiwan documents and some old systems keep them.

The mapping is one character to one character, so it is a plain translate in
Spark too (:func:`lawlake.rules.spark.person_name`).
"""

from __future__ import annotations

from lawlake.rules import WHITESPACE

__all__ = ["MIDDLE_DOT", "MIDDLE_DOTS", "SIMPLIFIED", "TRADITIONAL", "normalize"]

MIDDLE_DOT = "·"  # U+00B7
# Look-alikes: bullet U+2022, hyphenation point U+2027, katakana middle dot
# U+30FB and its half-width form U+FF65, bullet operator U+2219, dot operator
# U+22C5, Greek ano teleia U+0387 (NFC turns U+00B7 into it in some tools),
# one-dot leader U+2024 and the small/full-width full stops used as separators.
# The ASCII full stop too: GBK exports write transliterated names as 伊力.沙吾提 (no · in their keyboards' habits).
MIDDLE_DOTS = "\u2022\u2027\u30fb\uff65\u2219\u22c5\u0387\u2024\ufe52\uff0e."

# Traditional → simplified, pair by pair (position i of one ↔ position i of the other).
TRADITIONAL = (
    "張陳劉黃趙吳楊鄭謝許馮葉蘇盧蔣孫鄧韓馬羅蕭錢龍鍾譚賴顧萬閻湯鄒華賈陸嚴聶"  # surnames
    "偉國紅麗軍飛強東雲鳳傑輝靜寶貴榮慶興鵬濤義愛"  # frequent in given names
    "蘭剛寧艷穎潔瑩凱帥歡陽龔賀韋鐘"  # more seen in the agencies' records (bench/score_normalize.py)
)
SIMPLIFIED = (
    "张陈刘黄赵吴杨郑谢许冯叶苏卢蒋孙邓韩马罗萧钱龙钟谭赖顾万阎汤邹华贾陆严聂"
    "伟国红丽军飞强东云凤杰辉静宝贵荣庆兴鹏涛义爱"
    "兰刚宁艳颖洁莹凯帅欢阳龚贺韦钟"
)

_NORMALIZE = str.maketrans(
    MIDDLE_DOTS + TRADITIONAL,
    MIDDLE_DOT * len(MIDDLE_DOTS) + SIMPLIFIED,
    WHITESPACE,
)


def normalize(text: str | None) -> str | None:
    """A person's name without whitespace, with one kind of middle dot and simplified characters.

    None when nothing is left.
    """
    if text is None:
        return None
    return text.translate(_NORMALIZE) or None
