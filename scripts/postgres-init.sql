-- the Optuna study database, beside MLflow's (docker-compose.yaml)
CREATE DATABASE optuna;
