{{ container.name 
