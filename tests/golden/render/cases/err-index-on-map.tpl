{{ config.0 }}
