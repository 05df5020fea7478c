/* The registered graphs (GET /api/graphs), loaded once per page and shared by the start form and the task view. */

const RETRY_BASE_MS = 500;
const RETRY_MAX_MS = 5000;

/** Node names of a graph from /api/graphs, without LangGraph's __start__/__end__. */
export function graphNodeNames(graph) {
  if (!graph || !Array.isArray(graph.nodes)) return [];
  return graph.nodes
    .map((node) => (typeof node === 'string' ? node : node && (node.name || node.id)))
    .filter((name) => name && !/^__.*__$/.test(name));
}

export class GraphCatalog {
  constructor(api) {
    this.api = api;
    this.byName = new Map();
    this.loaded = null;
    this.onError = () => {};
  }

  /** Load /api/graphs once (retrying until the server answers); resolves to the name -> graph map. */
  load() {
    if (!this.loaded) {
      this.loaded = (async () => {
        for (let attempt = 0; ; attempt += 1) {
          try {
            const data = await this.api.request('GET', '/api/graphs');
            for (const graph of (data && data.graphs) || []) this.byName.set(graph.name, graph);
            return this.byName;
          } catch (error) {
            this.onError(error.message);
            await new Promise((resolve) => setTimeout(resolve, Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** attempt)));
          }
        }
      })();
    }
    return this.loaded;
  }

  nodeNames(graphName) { return graphNodeNames(this.byName.get(graphName)); }
}
