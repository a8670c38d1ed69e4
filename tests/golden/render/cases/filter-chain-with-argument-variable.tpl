{{ config_get("user.user-data", "")|upper|truncatechars:config.limits.cpu|length }}
