{{ config_get("a" "b") }}
