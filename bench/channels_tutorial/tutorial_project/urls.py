"""URLs of the tutorial project: the benchmark needs no HTTP views."""
urlpatterns = []
