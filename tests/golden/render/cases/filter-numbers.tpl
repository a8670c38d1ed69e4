{{ "3.14159"|floatformat:2 }} {{ 3.0|floatformat }} {{ 10|divisibleby:5 }} {{ 12345|get_digit:2 }} {{ "7.9"|integer }} {{ 2|float }}
