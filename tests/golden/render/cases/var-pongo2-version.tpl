{{ pongo2.version }}
