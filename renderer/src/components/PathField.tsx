import { useRef, type ReactNode } from 'react';
import { useStudio } from '../stores/studio.ts';

export interface PathUpload {
  accept: string;
  /** Test id of the visible Upload… button. */
  buttonTestId: string;
  /** Test id of the hidden file input the button clicks. */
  testId: string;
  onFile: (file: File) => void;
}

export interface PathFieldProps {
  value: string;
  onChange: (value: string) => void;
  placeholder: string;
  testId: string;
  id?: string;
  ariaLabel?: string;
  /** Extra class next to `path-row`. */
  className?: string;
  busy?: boolean;
  /** With it the row is a form whose submit (Enter or the Load button) calls it. */
  onLoad?: () => void;
  loadTestId?: string;
  /** Shown only in Electron, which has a native file dialog. */
  onBrowse?: () => void;
  browseTestId?: string;
  /** Shown only in the browser, where no dialog can hand back a path. */
  upload?: PathUpload;
  /** Extra controls at the end of the row. */
  children?: ReactNode;
}

/** A text field holding a file path, with Load and Browse… / Upload… buttons as the caller asks. */
export function PathField(props: PathFieldProps) {
  const { value, onChange, placeholder, testId, id, ariaLabel, className, busy, onLoad, loadTestId, onBrowse, browseTestId, upload, children } = props;
  const isElectron = useStudio((s) => s.client?.host === 'electron');
  const fileInput = useRef<HTMLInputElement>(null);
  const rowClass = className ? `path-row ${className}` : 'path-row';

  const content = (
    <>
      <input
        id={id}
        type="text"
        data-testid={testId}
        aria-label={ariaLabel}
        placeholder={placeholder}
        spellCheck={false}
        value={value}
        onChange={(e) => onChange(e.target.value)}
      />
      {onLoad ? (
        <button type="submit" data-testid={loadTestId} disabled={busy}>
          Load
        </button>
      ) : null}
      {isElectron ? (
        onBrowse ? (
          <button type="button" data-testid={browseTestId} disabled={busy} onClick={() => onBrowse()}>
            Browse…
          </button>
        ) : null
      ) : upload ? (
        <>
          <button type="button" data-testid={upload.buttonTestId} disabled={busy} onClick={() => fileInput.current?.click()}>
            Upload…
          </button>
          <input
            ref={fileInput}
            type="file"
            accept={upload.accept}
            hidden
            data-testid={upload.testId}
            onChange={(e) => {
              const file = e.target.files?.[0];
              // Reset so choosing the same file again (after fixing it) fires another change.
              e.target.value = '';
              if (file) upload.onFile(file);
            }}
          />
        </>
      ) : null}
      {children}
    </>
  );

  if (!onLoad) return <div className={rowClass}>{content}</div>;
  return (
    <form
      className={rowClass}
      onSubmit={(e) => {
        e.preventDefault();
        onLoad();
      }}
    >
      {content}
    </form>
  );
}
