"""Operations on whole projects and on the service: move, back up, restore, measure.

Above search and indexing and below the interfaces: an operation may read a
project's status or its jobs, and nothing below it knows operations exist.
"""
