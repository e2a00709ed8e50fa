"""Pure folds (``evolve(state, event) -> (state, outputs)``) and the Faust app that runs them."""
