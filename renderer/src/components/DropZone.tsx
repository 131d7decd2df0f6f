import { useEffect, useState } from 'react';
import { useStudio } from '../stores/studio.ts';

/** Only file drags from the OS: dragging an adapter out of the window carries no 'Files'. */
function carriesFiles(e: DragEvent): boolean {
  return !!e.dataTransfer && Array.from(e.dataTransfer.types).includes('Files');
}

/**
 * The whole window accepts a dataset file: while a file is dragged over it an overlay says so, and a drop loads the
 * first file (by its path in the desktop app, by its content in a browser).
 */
export function DropZone() {
  const [active, setActive] = useState(false);
  useEffect(() => {
    // dragenter/dragleave fire for every element crossed; the window is left when they balance out.
    let depth = 0;
    const onEnter = (e: DragEvent) => {
      if (!carriesFiles(e)) return;
      e.preventDefault();
      depth++;
      setActive(true);
    };
    const onOver = (e: DragEvent) => {
      if (!carriesFiles(e)) return;
      // Without this the browser (or Electron) would open the file in place of the studio.
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
    };
    const onLeave = (e: DragEvent) => {
      if (!carriesFiles(e)) return;
      depth = Math.max(0, depth - 1);
      if (depth === 0) setActive(false);
    };
    const onDrop = (e: DragEvent) => {
      if (!carriesFiles(e)) return;
      e.preventDefault();
      depth = 0;
      setActive(false);
      const file = e.dataTransfer?.files[0];
      if (file) void useStudio.getState().dropDatasetFile(file);
    };
    window.addEventListener('dragenter', onEnter);
    window.addEventListener('dragover', onOver);
    window.addEventListener('dragleave', onLeave);
    window.addEventListener('drop', onDrop);
    return () => {
      window.removeEventListener('dragenter', onEnter);
      window.removeEventListener('dragover', onOver);
      window.removeEventListener('dragleave', onLeave);
      window.removeEventListener('drop', onDrop);
    };
  }, []);
  if (!active) return null;
  return (
    <div className="drop-overlay" data-testid="drop-overlay" aria-hidden="true">
      <div className="drop-box">
        <div className="drop-title">Drop a dataset file</div>
        <div className="muted">JSONL · JSON · CSV/TSV · Parquet · text</div>
      </div>
    </div>
  );
}
