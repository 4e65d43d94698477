"""What the product knows, declared once: every number format (registry), every setting
(settings), every result field (fields), the grades behind the plain cues (grades) and the input
file types (file_types).

Plain Python, no numpy: the site build reads it to generate the page's schema.js. It imports
nothing of quantcalc but `errors`.
"""
