{{ "abcdefghij"|truncatechars:6 }} {{ "abcdefghij"|truncatechars:2 }} {{ "one two three four"|truncatewords:2 }}
