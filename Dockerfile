# lawlake image for the production compose file: Airflow 3 + lawlake, installed from the lock file.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless make && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/lawlake
COPY requirements.lock pyproject.toml ./
RUN pip install --no-cache-dir uv==0.13.8 && uv pip install --system --no-cache -r requirements.lock
COPY . .
RUN uv pip install --system --no-cache --no-deps -e .
ENV AIRFLOW_HOME=/opt/airflow AIRFLOW__CORE__DAGS_FOLDER=/opt/lawlake/dags AIRFLOW__CORE__LOAD_EXAMPLES=False
