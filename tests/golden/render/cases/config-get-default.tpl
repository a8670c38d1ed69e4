{{ config_get("user.missing", properties.default) }}|{{ config_get("user.missing", "") }}|
