{{ "a b&c/d"|urlencode }} {{ "a b&c/d?é"|iriencode }} {{ "1-800-FLOWERS"|phone2numeric }} {{ "it's \"q\""|addslashes }} {{ "a'b\nc"|escapejs }}
