{% verbatim %}{{ container.name }} {% if %}{% endverbatim %} {{ container.name }}
