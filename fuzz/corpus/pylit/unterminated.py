{'answer': 'it is
