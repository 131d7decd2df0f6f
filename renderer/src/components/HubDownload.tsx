import { useState } from 'react';
import { useModelPull } from '../stores/model-pull.ts';
import { ErrorNote } from './ErrorNote.tsx';
import { formatBytes } from './format.ts';

interface Props {
  /** Prefix of the test ids: '' (Train page), 'lab-', 'pg-'. */
  idPrefix: string;
  busy: boolean;
  /** Gets the downloaded model's path (the snapshot folder, or the .gguf) for the model field. */
  onDownloaded(path: string): void;
}

/**
 * "Download from Hugging Face": an org/name, optionally one .gguf of it and a token for a gated repo, into the
 * Hugging Face cache (where transformers and the list above find it too), with progress and Cancel; a cancelled or
 * broken download resumes where it stopped when started again.
 */
export function HubDownload({ idPrefix, busy, onDownloaded }: Props) {
  const { jobId, repo: pulling, progress, done, error, cancelled, start, cancel } = useModelPull();
  const [repo, setRepo] = useState('');
  const [file, setFile] = useState('');
  const [token, setToken] = useState('');
  const running = jobId !== null;
  const pct = progress && progress.total ? Math.floor((100 * progress.bytes) / progress.total) : null;
  return (
    <div className="hub-download" data-testid={`${idPrefix}hub-download`}>
      <div className="hub-download-title">Download from Hugging Face</div>
      <form
        className="hub-download-form"
        onSubmit={(e) => {
          e.preventDefault();
          void start({ repo: repo.trim(), ...(file.trim() ? { file: file.trim() } : {}), ...(token.trim() ? { token: token.trim() } : {}) }, onDownloaded);
        }}
      >
        <input type="text" aria-label="Hugging Face model id" placeholder="org/name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct" value={repo} onChange={(e) => setRepo(e.target.value)} disabled={running} data-testid={`${idPrefix}hub-repo`} />
        <input type="text" aria-label="GGUF file (optional)" placeholder="one .gguf file (optional)" value={file} onChange={(e) => setFile(e.target.value)} disabled={running} data-testid={`${idPrefix}hub-file`} />
        <input type="password" aria-label="Hugging Face token (gated or private repos)" placeholder="token (gated or private repos; else HF_TOKEN)" value={token} onChange={(e) => setToken(e.target.value)} disabled={running} autoComplete="off" data-testid={`${idPrefix}hub-token`} />
        {running ? (
          <button type="button" onClick={() => void cancel()} data-testid={`${idPrefix}hub-cancel`}>
            Cancel
          </button>
        ) : (
          <button type="submit" disabled={busy || repo.trim() === ''} data-testid={`${idPrefix}hub-pull`}>
            Download
          </button>
        )}
      </form>
      {running ? (
        <div className="hub-download-progress" data-testid={`${idPrefix}hub-progress`}>
          <progress max={100} value={pct ?? undefined} />
          <span className="muted">
            {' '}
            {pulling}
            {progress ? ` · ${progress.file} (${progress.fileIndex + 1}/${progress.files}) · ${formatBytes(progress.bytes)}${progress.total ? ` of ${formatBytes(progress.total)}` : ''}` : ' · asking the Hub…'}
          </span>
        </div>
      ) : null}
      {!running && done ? (
        <p className="muted" data-testid={`${idPrefix}hub-done`}>
          Downloaded {done.repo} ({done.files.length} files, {formatBytes(done.downloadedBytes)} fetched) to {done.path}
        </p>
      ) : null}
      {!running && cancelled ? (
        <p className="muted" data-testid={`${idPrefix}hub-cancelled`}>
          Cancelled; downloading {pulling} again resumes where it stopped.
        </p>
      ) : null}
      {!running && error && !cancelled ? <ErrorNote error={error} testId={`${idPrefix}hub-error`} /> : null}
    </div>
  );
}
