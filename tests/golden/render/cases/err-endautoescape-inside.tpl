a{% endautoescape %}b
