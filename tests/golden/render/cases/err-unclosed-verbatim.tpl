{% verbatim %}{{ x }}
