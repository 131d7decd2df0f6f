/** How the run charts draw, shared by all of them and kept across reloads: the log-scale toggle. */
import { create } from 'zustand';

const KEY = 'lora-studio.chart.logScale';

function stored(): boolean {
  try {
    return globalThis.localStorage?.getItem(KEY) === '1';
  } catch {
    return false;
  }
}

export const useChartOptions = create<{ logScale: boolean; setLogScale(on: boolean): void }>()((set) => ({
  logScale: stored(),
  setLogScale(on) {
    try {
      globalThis.localStorage?.setItem(KEY, on ? '1' : '0');
    } catch {
      // private mode: the toggle still works for this page
    }
    set({ logScale: on });
  },
}));
