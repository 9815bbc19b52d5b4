import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

/**
 * One field of a dialog form.
 */
export interface IFormField {
  /** Key of the field in the form's value. */
  key: string;
  label: string;
  kind: 'text' | 'number' | 'select';
  /** The choices of a `select`: value and label. */
  options?: { value: string; label: string }[];
  /** Initial value. */
  value?: string;
  placeholder?: string;
  /** A hint under the field. */
  help?: string;
  /** For a `number`: the smallest value. */
  min?: number;
  /**
   * Show the field only while the field `key` has one of `values` (a hidden field's value
   * is empty).
   */
  showWhen?: { key: string; values: string[] };
}

/**
 * The body of a dialog: labelled inputs, one per field; its value maps keys to the texts
 * typed (trimmed; empty when left blank).
 */
export class FormBody
  extends Widget
  implements Dialog.IBodyWidget<Record<string, string>>
{
  constructor(fields: IFormField[]) {
    super();
    this.addClass('jp-ModelHub-form');
    this._fields = fields;
    for (const field of fields) {
      const id = `jp-ModelHub-field-${Private.nextId()}`;
      const row = document.createElement('div');
      row.className = 'jp-ModelHub-formRow';
      const label = document.createElement('label');
      label.htmlFor = id;
      label.textContent = field.label;
      row.appendChild(label);
      let input: HTMLInputElement | HTMLSelectElement;
      if (field.kind === 'select') {
        const select = document.createElement('select');
        for (const option of field.options ?? []) {
          const element = document.createElement('option');
          element.value = option.value;
          element.textContent = option.label;
          select.appendChild(element);
        }
        input = select;
      } else {
        const text = document.createElement('input');
        text.type = field.kind;
        if (field.placeholder) {
          text.placeholder = field.placeholder;
        }
        if (field.min !== undefined) {
          text.min = String(field.min);
        }
        input = text;
      }
      input.id = id;
      input.name = field.key;
      input.className = 'jp-mod-styled jp-ModelHub-formInput';
      if (field.value !== undefined) {
        input.value = field.value;
      }
      row.appendChild(input);
      if (field.help) {
        const help = document.createElement('div');
        help.className = 'jp-ModelHub-formHelp';
        help.id = `${id}-help`;
        help.textContent = field.help;
        input.setAttribute('aria-describedby', help.id);
        row.appendChild(help);
      }
      this.node.appendChild(row);
      this._inputs.set(field.key, input);
      this._rows.set(field.key, row);
    }
    for (const input of this._inputs.values()) {
      input.addEventListener('change', () => this._updateVisibility());
    }
    this._updateVisibility();
  }

  getValue(): Record<string, string> {
    const value: Record<string, string> = {};
    for (const field of this._fields) {
      value[field.key] = this.isShown(field.key)
        ? (this._inputs.get(field.key)?.value ?? '').trim()
        : '';
    }
    return value;
  }

  /**
   * Whether the field `key` is shown (its `showWhen` condition holds).
   */
  isShown(key: string): boolean {
    return this._rows.get(key)?.hidden === false;
  }

  /**
   * Show the fields whose condition holds, hide the others.
   */
  private _updateVisibility(): void {
    for (const field of this._fields) {
      const condition = field.showWhen;
      const row = this._rows.get(field.key);
      if (condition && row) {
        const current = this._inputs.get(condition.key)?.value ?? '';
        row.hidden = !condition.values.includes(current);
      }
    }
  }

  /**
   * The first input takes the focus when the dialog opens.
   */
  protected onAfterAttach(): void {
    this._inputs.values().next().value?.focus();
  }

  private _fields: IFormField[];
  private _inputs = new Map<string, HTMLInputElement | HTMLSelectElement>();
  private _rows = new Map<string, HTMLDivElement>();
}

/**
 * Show a form in a dialog.
 *
 * @returns the form's value, or null when the user cancelled.
 */
export async function showForm(
  title: string,
  fields: IFormField[],
  accept: string
): Promise<Record<string, string> | null> {
  const result = await showDialog({
    title,
    body: new FormBody(fields),
    buttons: [
      Dialog.cancelButton(),
      Dialog.okButton({ label: accept, ariaLabel: accept })
    ],
    focusNodeSelector: 'input, select'
  });
  return result.button.accept ? result.value : null;
}

/**
 * Ask the user to confirm an action that cannot be undone.
 */
export async function confirm(
  title: string,
  message: string,
  accept: string
): Promise<boolean> {
  const result = await showDialog({
    title,
    body: message,
    buttons: [
      Dialog.cancelButton(),
      Dialog.warnButton({ label: accept, ariaLabel: accept })
    ]
  });
  return result.button.accept;
}

namespace Private {
  let id = 0;

  export function nextId(): number {
    return ++id;
  }
}
