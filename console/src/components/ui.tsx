// The few building blocks every page uses: labelled fields, the error and status lines, and a
// two-step button for what cannot be undone.
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';

type InputProps = JSX.IntrinsicElements['input'] & {
  label: string;
  id: string;
  hint?: string;
};

export function Field({ label, id, hint, ...input }: InputProps) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input id={id} aria-describedby={hint ? `${id}-hint` : undefined} {...input} />
      {hint && (
        <small id={`${id}-hint`} class="hint">
          {hint}
        </small>
      )}
    </div>
  );
}

/** What failed, read out at once by screen readers. */
export function ErrorLine({ error }: { error: string | null }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error}
    </p>
  );
}

/** A polite live region: present (empty) from the start so that changes are announced. */
export function StatusLine({ children, id }: { children?: ComponentChildren; id?: string }) {
  return (
    <p class="status" role="status" id={id}>
      {children}
    </p>
  );
}

/** A first press asks, a second one does it; Escape or "Keep" backs out. */
export function ConfirmButton({
  label,
  confirmLabel,
  onConfirm,
  disabled,
}: {
  label: string;
  confirmLabel: string;
  onConfirm: () => void;
  disabled?: boolean;
}) {
  const [asking, setAsking] = useState(false);
  const confirmRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (asking) confirmRef.current?.focus();
  }, [asking]);
  if (!asking) {
    return (
      <button type="button" class="secondary" disabled={disabled} onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  }
  return (
    <span class="confirm" onKeyDown={(e) => e.key === 'Escape' && setAsking(false)}>
      <button
        type="button"
        class="danger"
        ref={confirmRef}
        onClick={() => {
          setAsking(false);
          onConfirm();
        }}
      >
        {confirmLabel}
      </button>
      <button type="button" class="secondary" onClick={() => setAsking(false)}>
        Keep
      </button>
    </span>
  );
}

/** Copies text to the clipboard and says so. */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [done, setDone] = useState<string>('');
  return (
    <span>
      <button
        type="button"
        class="secondary"
        aria-label={label}
        onClick={async () => {
          try {
            await navigator.clipboard.writeText(text);
            setDone('Copied');
          } catch {
            setDone('Copy failed: select the text and copy it');
          }
          setTimeout(() => setDone(''), 3000);
        }}
      >
        Copy
      </button>
      <span class="copied" role="status">
        {done}
      </span>
    </span>
  );
}

/** Sets the document title and moves focus to the page's heading (for screen readers). */
export function PageTitle({ children }: { children: string }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${children} · Kurt`;
    ref.current?.focus();
  }, [children]);
  return (
    <h1 tabIndex={-1} ref={ref}>
      {children}
    </h1>
  );
}
