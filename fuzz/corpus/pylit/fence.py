```python
{'k': 'v'}
```