{{ config_get("user.user-data") }}
