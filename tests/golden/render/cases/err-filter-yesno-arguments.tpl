{{ true|yesno:"a,b,c,d" }}
