"""pool.yml: the loader and validation (loader), YAML nodes that keep their
line numbers (yamlnodes), and memory sizes as operators write them (sizes).
"""
