/**
 * Prometheus export of the runs (prom-client): gauges per run for loss, tokens trained, step, loss scale and
 * throughput, plus the run's state. Off by default; with a port set, GET http://127.0.0.1:<port>/metrics serves the
 * text format. It binds the loopback address only: the numbers say what is being trained.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Gauge, Registry } from 'prom-client';
import type { MetricPoint, RunState } from '../../common/protocol.ts';
import { RUN_STATES } from './run-state.ts';

type RunLabels = 'run_id' | 'run_name';

export interface RunIdentity {
  id: string;
  name: string;
}

export class RunMetricsExporter {
  readonly registry = new Registry();
  private readonly loss: Gauge<RunLabels>;
  private readonly validationLoss: Gauge<RunLabels>;
  private readonly tokens: Gauge<RunLabels>;
  private readonly step: Gauge<RunLabels>;
  private readonly totalSteps: Gauge<RunLabels>;
  private readonly lossScale: Gauge<RunLabels>;
  private readonly tokensPerSecond: Gauge<RunLabels>;
  private readonly learningRate: Gauge<RunLabels>;
  private readonly state: Gauge<RunLabels | 'state'>;
  private readonly names = new Map<string, string>();
  /** Tokens per run and step, so a step redone after a resume is not counted twice. */
  private readonly tokensByStep = new Map<string, Map<number, number>>();

  constructor() {
    const registers = [this.registry];
    const labelNames = ['run_id', 'run_name'] as const;
    this.loss = new Gauge({ name: 'lora_studio_run_loss', help: 'Training loss of the last finished step', labelNames, registers });
    this.validationLoss = new Gauge({ name: 'lora_studio_run_validation_loss', help: 'Last validation loss', labelNames, registers });
    this.tokens = new Gauge({ name: 'lora_studio_run_tokens', help: 'Tokens trained on so far (non-ignored targets)', labelNames, registers });
    this.step = new Gauge({ name: 'lora_studio_run_step', help: 'Last finished optimizer step', labelNames, registers });
    this.totalSteps = new Gauge({ name: 'lora_studio_run_total_steps', help: 'Optimizer steps the run will take', labelNames, registers });
    this.lossScale = new Gauge({ name: 'lora_studio_run_loss_scale', help: 'Loss scale of the fp16 grad scaler (1 in fp32)', labelNames, registers });
    this.tokensPerSecond = new Gauge({ name: 'lora_studio_run_tokens_per_second', help: 'Throughput of the last step in tokens per second', labelNames, registers });
    this.learningRate = new Gauge({ name: 'lora_studio_run_learning_rate', help: 'Learning rate of the last step', labelNames, registers });
    this.state = new Gauge({ name: 'lora_studio_run_state', help: 'The run state: 1 for the state the run is in, 0 for the others', labelNames: ['run_id', 'run_name', 'state'] as const, registers });
  }

  private labels(run: RunIdentity): Record<RunLabels, string> {
    this.names.set(run.id, run.name);
    return { run_id: run.id, run_name: run.name };
  }

  /** Records a finished step of a run. */
  observe(run: RunIdentity, point: MetricPoint, totalSteps?: number): void {
    const l = this.labels(run);
    if (Number.isFinite(point.loss)) this.loss.set(l, point.loss);
    if (point.validationLoss !== undefined && Number.isFinite(point.validationLoss)) this.validationLoss.set(l, point.validationLoss);
    this.step.set(l, point.step);
    if (totalSteps !== undefined) this.totalSteps.set(l, totalSteps);
    this.lossScale.set(l, point.lossScale ?? 1);
    this.tokensPerSecond.set(l, point.tokensPerSecond);
    this.learningRate.set(l, point.learningRate);
    let steps = this.tokensByStep.get(run.id);
    if (!steps) {
      steps = new Map();
      this.tokensByStep.set(run.id, steps);
    }
    steps.set(point.step, point.tokens);
    let sum = 0;
    for (const [s, t] of steps) if (s <= point.step) sum += t;
    this.tokens.set(l, sum);
  }

  /** Loads a run's stored history (after a restart) so the counters continue where they were. */
  restore(run: RunIdentity, points: readonly MetricPoint[], totalSteps?: number): void {
    this.tokensByStep.delete(run.id);
    for (const p of points) this.observe(run, p, totalSteps);
  }

  setState(run: RunIdentity, state: RunState): void {
    const l = this.labels(run);
    for (const s of RUN_STATES) this.state.set({ ...l, state: s }, s === state ? 1 : 0);
  }

  /** Drops every series of a run (deleted runs). */
  forget(runId: string): void {
    const name = this.names.get(runId);
    if (name === undefined) return;
    const l = { run_id: runId, run_name: name };
    for (const g of [this.loss, this.validationLoss, this.tokens, this.step, this.totalSteps, this.lossScale, this.tokensPerSecond, this.learningRate]) g.remove(l);
    for (const s of RUN_STATES) this.state.remove({ ...l, state: s });
    this.names.delete(runId);
    this.tokensByStep.delete(runId);
  }

  /** The Prometheus text exposition of every series. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

export interface PrometheusEndpoint {
  port: number;
  host: string;
  url: string;
  close(): Promise<void>;
}

/**
 * Serves GET /metrics on host:port (127.0.0.1 unless told otherwise; port 0 picks a free one). Anything else is 404.
 * Fails with a message naming the address when the port is taken.
 */
export function servePrometheus(exporter: RunMetricsExporter, options: { port: number; host?: string }): Promise<PrometheusEndpoint> {
  const host = options.host ?? '127.0.0.1';
  if (!(Number.isInteger(options.port) && options.port >= 0 && options.port <= 65535)) {
    return Promise.reject(new Error(`Prometheus port must be a whole number from 0 to 65535, got ${options.port}`));
  }
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('only /metrics is served here\n');
      return;
    }
    exporter.text().then(
      (body) => {
        res.writeHead(200, { 'content-type': exporter.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (e: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`${e instanceof Error ? e.message : String(e)}\n`);
      },
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(new Error(`cannot serve Prometheus metrics on ${host}:${options.port}: ${e.code === 'EADDRINUSE' ? 'the port is in use' : e.message}`, { cause: e }));
    });
    server.listen(options.port, host, () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        port,
        host,
        url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
