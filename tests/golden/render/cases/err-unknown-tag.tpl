hello
{% frobnicate %}
