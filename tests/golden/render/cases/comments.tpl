a{# a comment #}b{% comment %}
multi
line {{ x }}
{% endcomment %}c
