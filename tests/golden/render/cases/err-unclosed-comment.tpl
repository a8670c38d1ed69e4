a {# comment
