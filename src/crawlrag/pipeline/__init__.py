"""The indexing pipeline the CLI and the server share: crawl options, jobs, the indexer and re-embedding.

Nothing is imported here, so `crawlrag.config` can read the option bounds from `crawlrag.pipeline.bounds`
without loading the pipeline itself.
"""
