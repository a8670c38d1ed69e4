{{ "a
b

c"|linebreaks }}|{{ "a
b"|linebreaksbr }}|{{ "a
b"|linenumbers }}|{{ "one two three four five"|wordwrap:2 }}|{{ "a b c"|wordcount }}
