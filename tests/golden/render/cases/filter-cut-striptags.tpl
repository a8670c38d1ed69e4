{{ "a-b-c"|cut:"-" }} [{{ " <p>hi <b>there</b></p> "|striptags }}]
