{% for x in config %}{{ x }}
