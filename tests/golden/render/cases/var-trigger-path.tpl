{{ trigger }} {{ path }}
