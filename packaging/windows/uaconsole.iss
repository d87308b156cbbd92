; Inno Setup 6 script of the UA Console installer for Windows (x64).
;
; Build on Windows, from the repository root, after the PyInstaller bundle and the icons:
;   python packaging\icons.py
;   pyinstaller --noconfirm --workpath build\pyinstaller --distpath dist packaging\uaconsole.spec
;   iscc /DAppVersion=0.1.0 packaging\windows\uaconsole.iss
; Output: dist\uaconsole-VERSION-windows-x64-setup.exe (.github/workflows/build.yml does all this
; and then installs, self-tests and uninstalls the result).
;
; It installs dist\uaconsole\ (uaconsole.exe, the window; uaconsole-cli.exe, the same program for
; a terminal: --self-test, serve, mi, history) per user or for all users (the user chooses), a
; Start menu entry and optionally a desktop icon. Uninstalling removes every installed file; the
; user's configuration and event log (%LOCALAPPDATA%\uaconsole) are left, as with any program.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "UA Console"
#define AppExe "uaconsole.exe"
#define Root "..\.."

[Setup]
; Never change AppId: Windows uses it to find the installed copy for upgrades and removal.
AppId={{6B1E8C2A-4F0D-4E3B-9A57-2C8D1F6E9B41}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=UA Console developers
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog commandline
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir={#Root}\dist
OutputBaseFilename=uaconsole-{#AppVersion}-windows-x64-setup
SetupIconFile={#Root}\build\icons\uaconsole.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName} {#AppVersion}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
; Setup closes a running console before replacing its files.
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#Root}\dist\uaconsole\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"; Comment: "Place, answer and watch SIP calls"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
