'single' "double" '''triple
line''' r'raw\d' u'\u00e9\N{BULLET}' 'a' 'b'