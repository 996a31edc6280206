"""Solve flow: problems in -> prompt -> engine -> answers -> a Result per problem."""
