/** Which page the studio shows; a store so any component can send the user to another page (e.g. "Try it"). */
import { create } from 'zustand';
import type { StudioPage } from '../lab/PageTabs.tsx';

export const usePage = create<{ page: StudioPage; show(page: StudioPage): void }>()((set) => ({
  page: 'train',
  show: (page) => set({ page }),
}));
