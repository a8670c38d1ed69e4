{{ properties.greeting }}
