"""Stage 5, running: choose trackers (`selection`, `scheduler` for --due and --shard), run each
one's query, check the result (`checks`) and hand it to its destination (`refresh`, in
parallel through `pool`); `fan_out` expands a `for_each` tracker into its parts. `result`
holds what an engine returns, typed as the input declares."""
