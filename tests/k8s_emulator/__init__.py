"""A Kubernetes API server emulator for tests: the real kubectl and the real client talk HTTP to it.

Built on kmock (`kmock.KubernetesScaffold`): its aiohttp server on 127.0.0.1, its request log (every
request a test can assert on), its Status-shaped errors, and its DSL for injecting faults
(`emulator["patch /apis/..."] << kmock.KubernetesError(status=409, ...)`, or `>> callback` to act
and let the request through). Its stateful `KubernetesEmulator` is not used: it merges every PATCH
as a plain dict, has no resourceVersion, PUT, dry run, subresources or selectors, and kubectl needs
all of those. What kubectl and the client need is implemented here at the wire instead:

  resources.py   discovery (/api, /apis, group versions; scale and eviction subresources with their kinds)
  openapi.py     /openapi/v3 as far as kubectl's field-validation check reads it
  store.py       objects with uid, resourceVersion (optimistic locking), generation, watch events
  defaults.py    API defaulting, so templates sent back by `rollout undo` compare as on a cluster
  patches.py     JSON patch, merge patch, strategic merge, server-side apply's merge
  selectors.py   label and field selectors
  controllers.py the Deployment controller's ReplicaSets and revisions, rollout status; eviction + PDBs
  server.py      the routes: CRUD, dryRun=All, watch (incl. the watch-list bookmark), logs, scale,
                 eviction; slow answers (`slow()`), and `mutations`/`effects()` to count writes per key
  runner.py      runs it in a thread of its own and writes a kubeconfig for it
  harness.py     KubeTarget: the executor and read tools from Settings, activities in an ActivityEnvironment
  cases.py       cases that hold on the emulator and on a real cluster alike
"""
