{% import "macros.tpl" m %}
