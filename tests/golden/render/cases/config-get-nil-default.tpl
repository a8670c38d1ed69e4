[{{ config_get("user.missing", properties.nosuch) }}]
