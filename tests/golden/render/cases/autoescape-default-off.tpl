{{ config_get("user.html", "") }} {{ "<&>" }}
