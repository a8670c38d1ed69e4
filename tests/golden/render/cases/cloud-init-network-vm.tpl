{%- if config_get("user.network-config", "") == "" -%}
version: 1
config:
  - type: physical
    name: {% if instance.type == "virtual-machine" %}enp5s0{% else %}eth0{% endif %}
{%- else -%}
{{- config_get("user.network-config", "") -}}
{%- endif %}
