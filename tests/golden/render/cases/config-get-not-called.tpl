{{ config_get }}
