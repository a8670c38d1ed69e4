{{ container.name|upper }} {{ "HeLLo wORLD"|lower }} {{ "hello world-wide_web"|title }} {{ "élan"|capfirst }}
