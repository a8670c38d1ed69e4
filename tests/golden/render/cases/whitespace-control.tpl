a  {{- container.name -}}  b
  {%- if true -%}  c  {%- endif -%}  
d
