{{ nosuch|default:"fallback" }} {{ ""|default:container.name }} {{ 0|default:"zero" }} {{ nosuch|default_if_none:"none" }}
